"""The Ollama Modelfile written beside an exported GGUF file: FROM the file, TEMPLATE (the chat template as an Ollama
Go template), SYSTEM (the default system prompt), the stop tokens and the sampling defaults.

Ollama cannot run a Jinja chat template, and no library translates one into a Go template. What is done here
instead: the Jinja template is rendered for probe conversations with marker texts, which gives each role's text
before and after its content, the generation prompt and a default system prompt; the Go template is built from
those pieces, and the pieces are checked to re-create the Jinja rendering of a longer multi-turn conversation
exactly. A template that is not a plain per-message layout (one with a preamble, or rules across turns) fails that
check: the Modelfile then has no TEMPLATE, and the export says so (the template stays in the GGUF file).
"""

from __future__ import annotations

from typing import Optional

S, U, A, U2, A2 = "ftkit-s-91", "ftkit-u-92", "ftkit-a-93", "ftkit-u-94", "ftkit-a-95"


def _split(block: str, mark: str) -> Optional[tuple[str, str]]:
    if block.count(mark) != 1:
        return None
    before, after = block.split(mark)
    return before, after


def layout(tokenizer) -> Optional[dict]:
    """{role: (before, after)}, the generation prompt and the default system prompt, or None (see the module doc)."""
    def render(messages, gen=False):
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=gen)

    if not tokenizer.chat_template:
        return None
    system, usr, ast = ({"role": r, "content": c} for r, c in (("system", S), ("user", U), ("assistant", A)))
    try:
        s, su, sua, gen, u = render([system]), render([system, usr]), render([system, usr, ast]), render([system, usr], True), render([usr])
    except Exception:  # noqa: BLE001 (a template that refuses the probes: jinja2's TemplateError or its own raise)
        return None
    if not (su.startswith(s) and sua.startswith(su) and gen.startswith(su)):
        return None
    pieces = {"system": _split(s, S), "user": _split(su[len(s):], U), "assistant": _split(sua[len(su):], A)}
    if None in pieces.values():
        return None
    user_block = U.join(pieces["user"])
    default = None
    if u != user_block:  # the template adds a system turn of its own to a conversation without one
        head = u[:-len(user_block)] if u.endswith(user_block) else ""
        before, after = pieces["system"]
        if not (head.startswith(before) and head.endswith(after) and len(head) > len(before) + len(after)):
            return None
        default = head[len(before):len(head) - len(after)]
    out = {"roles": pieces, "generation": gen[len(su):], "system": default}
    # the pieces must re-create a longer conversation, with and without a system turn
    for conv in ([system, usr, ast, {"role": "user", "content": U2}, {"role": "assistant", "content": A2}, usr],
                 [usr, ast, {"role": "user", "content": U2}]):
        if render(conv, True) != _render_pieces(out, conv):
            return None
    return out


def _render_pieces(lay: dict, messages: list[dict]) -> str:
    """What the Go template renders (Ollama prepends SYSTEM as a system message when a conversation has none)."""
    if lay["system"] is not None and messages[0]["role"] != "system":
        messages = [{"role": "system", "content": lay["system"]}, *messages]
    return "".join(m["content"].join(lay["roles"][m["role"]]) for m in messages) + lay["generation"]


def go_template(lay: dict) -> Optional[str]:
    """The layout as an Ollama (Go text/template) TEMPLATE over .Messages; None when a piece cannot be literal text."""
    texts = [t for pair in lay["roles"].values() for t in pair] + [lay["generation"]]
    if any("{{" in t or "}}" in t or '"""' in t for t in texts):
        return None
    (ps, ss), (pu, su), (pa, sa) = (lay["roles"][r] for r in ("system", "user", "assistant"))
    return ("{{ range .Messages }}"
            f'{{{{ if eq .Role "system" }}}}{ps}{{{{ .Content }}}}{ss}'
            f'{{{{ else if eq .Role "user" }}}}{pu}{{{{ .Content }}}}{su}'
            f'{{{{ else if eq .Role "assistant" }}}}{pa}{{{{ .Content }}}}{sa}'
            "{{ end }}{{ end }}" + lay["generation"])


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def text(gguf_name: str, source: str, lay: Optional[dict], system: Optional[str], stops: list[str],
         sampling: dict) -> str:
    """The Modelfile. `system`: the prompt the model was trained with (else the template's own default)."""
    lines = [f"# Written by `ftkit export --to-gguf` from {source}.", "# ollama create NAME -f THIS_FILE; ollama run NAME",
             f"FROM ./{gguf_name}"]
    template = go_template(lay) if lay else None
    if template is not None:
        lines.append(f'TEMPLATE """{template}"""')
    system = system if system is not None else (lay or {}).get("system")
    if system and '"""' not in system:
        lines.append(f'SYSTEM """{system}"""')
    lines += [f"PARAMETER stop {_quoted(s)}" for s in stops]
    names = {"temperature": "temperature", "top_p": "top_p", "top_k": "top_k", "repetition_penalty": "repeat_penalty"}
    lines += [f"PARAMETER {names[k]} {v:g}" for k, v in sampling.items() if v is not None]
    return "\n".join(lines) + "\n"
