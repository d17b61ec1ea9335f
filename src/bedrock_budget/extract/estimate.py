"""Estimates: the bound reserved before a call, and the fill-in for counts Bedrock did not report.

**The reservation is a bound, not a guess.** :func:`input_token_bound` is the most input tokens Bedrock can
bill for a request, so a refusing budget (block, downgrade) never lets concurrent calls overshoot it
whatever the content: prose, code, JSON, CJK, base64, emoji. It is

    UTF-8 bytes of text (of its NFKC form if longer) and of documents (one token per byte)
    + 128 per request (BOS, system and assistant headers, a template's default system text)
    + 8 per template part (every message, content block and source: role markers, block delimiters)
    + 600 when the request declares tools (the tool-use system prompt the provider adds)
    + 1,300 per provider-defined tool (Anthropic's bash, text editor, computer use)
    + 5,000 per image + 288,000 per video

**Why one token per byte holds, by family.** A byte-level BPE tokenizer starts from one token per UTF-8 byte
and every merge joins two tokens into one, so no text ever takes more tokens than bytes. A SentencePiece
model with byte fallback emits one token per character it knows and one per UTF-8 byte of a character it does
not, so again at most one token per byte; the dummy-prefix space it adds per segment is in the part allowance.

| family (Bedrock ids) | tokenizer | why tokens <= bytes |
|---|---|---|
| Anthropic Claude | byte-level BPE after NFKC (public one; later unpublished) | BPE, NFKC form |
| Meta Llama 3.x, 4 | tiktoken-style byte-level BPE, 128K-202K vocabulary | byte-level BPE |
| Meta Llama 2 | SentencePiece BPE, byte fallback, no normaliser | byte fallback |
| OpenAI gpt-oss | o200k_harmony (tiktoken, byte-level BPE) | byte-level BPE |
| Qwen, DeepSeek | byte-level BPE (published tokenizer.json) | byte-level BPE |
| Mistral 7B, Mixtral, Large 2402 | SentencePiece, byte fallback (v1-v3) | byte fallback |
| Mistral Large 2407+, Pixtral | Tekken (tiktoken, byte-level BPE) | byte-level BPE |
| Cohere Command R/R+, Embed | byte-level BPE (published tokenizer.json) | byte-level BPE |
| AI21 Jamba | SentencePiece-style BPE with byte fallback | byte fallback |
| Amazon Nova, Titan; unknown | unpublished | assumed: every published one is of the two kinds |

The one way past one token per byte is a tokenizer that normalises text into more characters: NFKC turns
some code points into many (U+FDFA, 3 bytes, becomes 33). Anthropic's public Claude tokenizer applies NFKC
and bills that character 15 tokens, 5 per byte. So text is counted as the larger of its UTF-8 size and its
NFKC form's (:func:`bedrock_budget.extract.values.token_bytes`), which bounds NFKC and non-normalising
tokenizers alike.

**What the template adds.** The request's JSON keys and role names are already counted as text. Published
chat templates add three to six special tokens per message (Llama 3 ``<|start_header_id|>`` ...
``<|eot_id|>``, ChatML ``<|im_start|>`` ... ``<|im_end|>``, Harmony ``<|start|>`` ... ``<|end|>``, Claude's
``Human:``/``Assistant:`` turns): 8 per part covers them with margin, and every content block and source is a
part too. The longest default preamble among published templates is gpt-oss's Harmony system message (about
70 tokens), within the 128 per request. Tool definitions, tool-call arguments and JSON tool results are
measured as the longest JSON text they can render as (see :mod:`bedrock_budget.extract.content`).

**Tool use.** Anthropic documents the system prompt it adds when tools are present: 159 to 530 tokens by
model and ``tool_choice`` (530 for Claude 3 Opus with ``auto``; 346 / 313 for auto / any on Claude 3.5
Sonnet and the Claude 4 models), https://docs.anthropic.com/en/docs/tool-use-pricing-and-tokens; 600 covers
all of them. Llama 3.x, Qwen, gpt-oss and Mistral publish their tool preambles in their chat templates (each
under 200 tokens); Nova, Cohere and AI21 do not publish theirs, and get the same 600. Anthropic's own tools
add their definitions on the provider side: bash 245 tokens, text editor 700, computer use 735 plus a
466-499-token system prompt (Anthropic's tool pages), so 1,300 per such tool.

**Images.** Claude bills about width x height / 750 tokens per image after resizing to its native maximum:
about 1.15 megapixels (~1,600 tokens) up to Claude Opus 4.6, 2,576 px on the long edge (~3.75 megapixels,
~5,000 tokens) from Opus 4.7 (https://docs.anthropic.com/en/docs/build-with-claude/vision). Nova 1 documents
up to ~2,600 tokens for a 1.3K x 1.3K image and Nova 2 bills a flat 230
(https://docs.aws.amazon.com/nova/latest/userguide/modalities-image.html); Llama 4 tiles reach ~2,450 and
Pixtral's 16-pixel patches ~4,200 at 1024 x 1024. 5,000 per image covers all of them.

**Video.** Only Nova reads video on Bedrock: at most 960 frames are sampled, each resized to 672 x 672
(https://docs.aws.amazon.com/nova/latest/userguide/modalities-video.html); 300 tokens a frame, above the
page's own estimates, gives 288,000 per video. The length is unknown before the call, so the bound is the
longest video.

**Not covered.** Compressed documents (PDF, DOCX, XLSX) can hold more text than their size and are reserved
at one token per byte, which bounds plain-text formats (TXT, MD, HTML, CSV) only; in practice a PDF's byte
size is far above its billed tokens, but that is an observation, not a bound. Output is bounded by the
request's own cap (or the model's maximum), independently of content.

**The fill-in is a different thing.** When Bedrock does not report input tokens (an unusual stream, a body
nobody foresaw) :func:`estimate_input_tokens` charges a typical figure, not the bound: 3.0 UTF-8 bytes per
token (3.5 for the 128K+ vocabularies of Llama 3+, gpt-oss, Qwen, DeepSeek, Cohere, Jamba) and 1,600 tokens
per image. Generated text seen on a stream that never reported usage counts as one token per four bytes
(rounded up), the prose average: it is what was actually produced, not a reservation.
"""

from __future__ import annotations

from typing import Final

from bedrock_budget.extract.families import kind_of
from bedrock_budget.extract.types import RequestInfo
from bedrock_budget.usage import Usage

__all__ = [
    "IMAGE_INPUT_TOKENS",
    "IMAGE_TOKEN_BOUND",
    "OUTPUT_BYTES_PER_TOKEN",
    "estimate_input_tokens",
    "guardrail_text_units",
    "input_token_bound",
    "rerank_queries",
    "tokens_from_output_bytes",
    "worst_case_usage",
]

IMAGE_INPUT_TOKENS: Final = 1_600
IMAGE_TOKEN_BOUND: Final = 5_000
VIDEO_TOKEN_BOUND: Final = 960 * 300
TEMPLATE_REQUEST_TOKENS: Final = 128
TEMPLATE_PART_TOKENS: Final = 8
TOOL_USE_PROMPT_TOKENS: Final = 600
PROVIDER_TOOL_TOKENS: Final = 1_300
OUTPUT_BYTES_PER_TOKEN: Final = 4
_DEFAULT_TENTHS: Final = 30
_TENTHS: Final[dict[str, int]] = {
    "llama": 35,
    "openai_chat": 35,
    "deepseek": 35,
    "cohere_text": 35,
    "cohere_chat": 35,
    "cohere_embed": 35,
    "jamba": 35,
}
# A guardrail text unit is up to 1,000 characters; UTF-8 bytes never undercount characters.
_TEXT_UNIT_BYTES: Final = 1_000
# The paid text policies a guardrail of unknown configuration may apply (word filters are free; automated
# reasoning is rare and priced separately), reserved for all of them.
_WORST_CASE_POLICIES: Final = (
    "content_filters",
    "denied_topics",
    "sensitive_information",
    "contextual_grounding",
)
_GUARDRAIL_OPERATIONS: Final = frozenset({"ApplyGuardrail", "InvokeGuardrailChecks"})
_MODEL_OPERATIONS: Final = frozenset(
    {"Converse", "ConverseStream", "InvokeModel", "InvokeModelWithResponseStream", "StartAsyncInvoke"}
)
_DOCUMENTS_PER_QUERY: Final = 100


def _ceil_div(numerator: int, denominator: int) -> int:
    return -(-numerator // denominator)


def input_token_bound(request: RequestInfo) -> int:
    """The most input tokens Bedrock can bill for the request: what every reservation holds."""
    tokens = request.input_bytes + request.document_bytes
    tokens += TEMPLATE_REQUEST_TOKENS + request.template_parts * TEMPLATE_PART_TOKENS
    if request.tools:
        tokens += TOOL_USE_PROMPT_TOKENS + request.provider_tools * PROVIDER_TOOL_TOKENS
    return tokens + request.images * IMAGE_TOKEN_BOUND + request.videos * VIDEO_TOKEN_BOUND


def estimate_input_tokens(request: RequestInfo) -> int:
    """Typical input tokens for the request's text, images and documents: the fill-in, never a reservation."""
    tenths = _TENTHS.get(request.family, _DEFAULT_TENTHS)
    text = _ceil_div(request.input_bytes * 10, tenths)
    documents = _ceil_div(request.document_bytes * 10, tenths)
    return text + documents + request.images * IMAGE_INPUT_TOKENS


def tokens_from_output_bytes(output_bytes: int) -> int:
    return _ceil_div(output_bytes, OUTPUT_BYTES_PER_TOKEN)


def guardrail_text_units(text_bytes: int) -> int:
    return _ceil_div(text_bytes, _TEXT_UNIT_BYTES)


def rerank_queries(documents: int) -> int:
    """Rerank bills one query per started block of 100 documents, and at least one per call."""
    return max(1, _ceil_div(documents, _DOCUMENTS_PER_QUERY))


def _guardrail_reservation(units: int) -> dict[str, int]:
    return dict.fromkeys(_WORST_CASE_POLICIES, units) if units else {}


def worst_case_usage(
    request: RequestInfo, *, model_max_output_tokens: int | None, default_max_output: int = 4096
) -> Usage:
    """The most a call can consume, for the budget reservation made before it is sent.

    Input is :func:`input_token_bound`. Output is the request's own cap (for Claude with thinking it already
    includes the thinking budget), else the model's maximum output, else ``default_max_output``. With cache
    points all input counts as cache writes at the longest TTL, the dearest way the same tokens can be billed.
    """
    if request.operation in _GUARDRAIL_OPERATIONS:
        return Usage(guardrail_text_units=_guardrail_reservation(guardrail_text_units(request.input_bytes)))
    if request.operation not in _MODEL_OPERATIONS:
        return Usage()
    kind = kind_of(request.family)
    if kind == "image":
        return Usage(
            images=request.output_images, image_size=request.image_size, image_quality=request.image_quality
        )
    if kind == "video":
        return Usage(video_seconds=request.video_seconds)
    if kind == "rerank":
        return Usage(rerank_queries=rerank_queries(request.rerank_documents))
    prompt = input_token_bound(request)
    output = 0
    if kind == "text":
        output = request.max_output_tokens or model_max_output_tokens or default_max_output
    guardrail: dict[str, int] = {}
    if request.guardrail:
        # Input and output are assessed separately, each rounding up to whole units.
        units = guardrail_text_units(request.input_bytes) + guardrail_text_units(
            output * OUTPUT_BYTES_PER_TOKEN
        )
        guardrail = _guardrail_reservation(units)
    if request.cache_ttl is None:
        return Usage(input_tokens=prompt, output_tokens=output, guardrail_text_units=guardrail)
    return Usage(
        output_tokens=output,
        cache_write_tokens=prompt,
        cache_write_1h_tokens=prompt if request.cache_ttl == "1h" else 0,
        guardrail_text_units=guardrail,
    )
