"""`ftkit push --model DIR --repo-id USER/NAME [--private]`: publish a saved model to the Hugging Face hub.

What goes up: the model (safetensors, config), tokenizer or image processor, adapters, recipe.yaml, metrics, the
curves picture and the model card, its snippets naming the repo id (the local README.md is not changed). What
stays: resumable checkpoints, tracker logs and the run's own bookkeeping. Every check happens before anything
is uploaded: a directory that holds no model, offline mode, no token, a token the hub rejects, an unreachable
hub: one line, exit 2, nothing sent.
"""

from __future__ import annotations

from pathlib import Path

from ftkit.errors import UserError
from ftkit.models import card, saved
from ftkit.workflows.resolve import recorded_task

# never uploaded: resumable training state, tracker files (logs/; tensorboard/ of runs before train.report_to), run
# bookkeeping, hidden files
IGNORE = ["checkpoints/*", "checkpoints/**", "logs/*", "logs/**", "tensorboard/*", "tensorboard/**", "best/**", "run.json",
          ".*", "**/.*"]


def files_to_upload(model_dir: Path) -> list[str]:
    from huggingface_hub.utils import filter_repo_objects

    files = sorted(str(p.relative_to(model_dir)) for p in model_dir.rglob("*") if p.is_file())
    return list(filter_repo_objects(files, ignore_patterns=IGNORE))


def _first_line(e: Exception) -> str:
    text = str(e).strip()
    return text.splitlines()[0][:200] if text else type(e).__name__


def check(model_dir: Path, repo_id: str):
    """Everything that can fail before an upload; returns (the HfApi to upload with, the user's name)."""
    if not model_dir.is_dir():
        raise UserError(f"--model: {model_dir} is not a directory")
    saved.check_dir(str(model_dir), "--model")  # a model, an adapter or an int8 model; a checkpoint is refused
    if not list(model_dir.glob("*.safetensors")):
        raise UserError(f"--model: {model_dir} has no *.safetensors weights; expected a directory ftkit saved")
    from huggingface_hub import HfApi, constants, get_token
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(repo_id)
        if repo_id.count("/") != 1:
            raise HFValidationError("expected one '/'")
    except HFValidationError as e:
        raise UserError(f"--repo-id: '{repo_id}' is not a hub repository id ({_first_line(e)}); expected USER/NAME "
                        f"(or ORG/NAME)") from None
    if constants.HF_HUB_OFFLINE:
        raise UserError("push: the hub is switched off here (HF_HUB_OFFLINE is set); unset it to upload")
    token = get_token()
    if not token:
        raise UserError("push: no Hugging Face token (run `hf auth login`, or set HF_TOKEN to a token with write access)")
    api = HfApi(token=token)
    try:
        who = api.whoami()
    except Exception as e:  # noqa: BLE001 (network errors, 401s: all mean "cannot upload from here")
        raise UserError(f"push: the hub did not accept the token or cannot be reached ({_first_line(e)}); "
                        f"nothing was uploaded") from None
    role = ((who.get("auth") or {}).get("accessToken") or {}).get("role")
    if role == "read":
        raise UserError("push: the token is read-only; create one with write access (hf auth login); nothing was uploaded")
    return api, who.get("name")


def run(model: str, repo_id: str, private: bool = False, log=print) -> str:
    from huggingface_hub import CommitOperationAdd

    model_dir = Path(model)
    api, user = check(model_dir, repo_id)
    own_card = (model_dir / card.CARD).is_file() and card.MARK not in (model_dir / card.CARD).read_text(errors="replace")
    files = [f for f in files_to_upload(model_dir) if own_card or f != card.CARD]
    operations = [CommitOperationAdd(path_in_repo=f, path_or_fileobj=str(model_dir / f)) for f in files]
    if not own_card:  # the card again, with the repo id in its snippets; the local README.md stays as it is
        operations.append(CommitOperationAdd(path_in_repo=card.CARD, path_or_fileobj=card.render(model_dir, recorded_task(model_dir), where=repo_id).encode()))
    try:
        url = api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
        if private and not getattr(api.repo_info(repo_id, repo_type="model"), "private", True):
            raise UserError(f"--private: {repo_id} already exists and is public; nothing was uploaded (make it "
                            f"private on the hub first, or push without --private)")
        log(f"pushing {model_dir} ({len(operations)} files) to {url} as {user}" + (" (private)" if private else ""))
        commit = api.create_commit(repo_id, operations, commit_message=f"ftkit push of {model_dir.name}", repo_type="model")
    except UserError:
        raise
    except Exception as e:  # noqa: BLE001 (403 on a repo not ours, a name the hub refuses, a dropped connection)
        raise UserError(f"push: the hub refused or the upload failed ({_first_line(e)}); one commit holds every file, so "
                        f"nothing of this push is on the hub") from None
    log(f"pushed: {getattr(commit, 'commit_url', None) or url}")
    return str(url)
