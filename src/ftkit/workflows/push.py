"""`ftkit push --model DIR --repo-id USER/NAME [--private]`: publish a saved model to the Hugging Face hub.

What goes up: the model (safetensors, config), tokenizer or image processor, adapters, recipe.yaml, metrics, the
curves picture and the model card, its snippets naming the repo id (the local README.md is not changed). What
stays: resumable checkpoints, tracker logs and the run's own bookkeeping. Every check happens before anything
is uploaded: a directory that holds no model, offline mode, no token, a token the hub rejects, an unreachable
hub: one line, exit 2, nothing sent.
"""

from __future__ import annotations

import re
from pathlib import Path

from ftkit.errors import UserError
from ftkit.models import card

# never uploaded: resumable training state, tracker files, run bookkeeping, an earlier run moved aside
IGNORE = ["checkpoints/*", "checkpoints/**", "logs/*", "logs/**", "best/**", "run.json", ".*", "**/.*", "*.old-*/**"]
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]{0,95}/[\w.-]{1,96}$")


def _model_files(model_dir: Path) -> list[str]:
    names = [p.name for p in model_dir.iterdir() if p.is_file()]
    weights = [n for n in names if n.endswith(".safetensors")]
    if not ({"config.json", "adapter_config.json"} & set(names)) or not weights:
        raise UserError(f"--model: {model_dir} holds no saved model (expected config.json or adapter_config.json "
                        f"with *.safetensors weights, as `ftkit pretrain` / `finetune` / `export` write)")
    return sorted(names)


def check(model_dir: Path, repo_id: str):
    """Everything that can fail before an upload; returns the HfApi to upload with."""
    if not model_dir.is_dir():
        raise UserError(f"--model: {model_dir} is not a directory")
    _model_files(model_dir)
    if not _REPO_ID.match(repo_id):
        raise UserError(f"--repo-id: '{repo_id}' is not a hub repository id; expected USER/NAME (or ORG/NAME)")
    from huggingface_hub import HfApi, constants, get_token

    if constants.HF_HUB_OFFLINE:
        raise UserError("push: the hub is switched off here (HF_HUB_OFFLINE is set); unset it to upload")
    token = get_token()
    if not token:
        raise UserError("push: no Hugging Face token (run `hf auth login`, or set HF_TOKEN to a token with write access)")
    api = HfApi(token=token)
    try:
        who = api.whoami()
    except Exception as e:  # noqa: BLE001 (network errors, 401s: all mean "cannot upload from here")
        first = str(e).strip().splitlines()[0][:160] if str(e).strip() else type(e).__name__
        raise UserError(f"push: the hub did not accept the token or cannot be reached ({first}); nothing was uploaded") from None
    return api, who.get("name")


def run(model: str, repo_id: str, private: bool = False, log=print) -> str:
    model_dir = Path(model)
    api, user = check(model_dir, repo_id)
    url = api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
    log(f"pushing {model_dir} to {url} as {user}" + (" (private)" if private else ""))
    readme = card.render(model_dir, where=repo_id).encode()
    own_card = (model_dir / card.CARD).is_file() and card.MARK not in (model_dir / card.CARD).read_text(errors="replace")
    commit = api.upload_folder(folder_path=str(model_dir), repo_id=repo_id, repo_type="model",
                               ignore_patterns=IGNORE + ([] if own_card else [card.CARD]),
                               commit_message=f"ftkit push of {model_dir.name}")
    if not own_card:
        api.upload_file(path_or_fileobj=readme, path_in_repo=card.CARD, repo_id=repo_id, repo_type="model",
                        commit_message="model card (ftkit)")
    log(f"pushed: {getattr(commit, 'commit_url', None) or url}")
    return str(url)

