"""The embedding operation: compute (or resume) a dataset's pooled SAE vectors.

A person at a terminal may name any SAE folder; an agent over MCP only folders under the allowed roots
(or the server's own ``--sae``). :func:`sae_choice` applies that rule for whichever caller passes roots.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from saescope.embed.engine import EmbedConfig
from saescope.errors import InputError
from saescope.ops.files import resolve_under_roots
from saescope.ops.requests import EmbedRequest
from saescope.store.dataset import EmbeddingManifest, ShardProgress
from saescope.workspace import DEFAULT, SAEChoice, Workspace, path_exists

if TYPE_CHECKING:
    from saescope.distributed import RaySettings


def sae_choice(req: EmbedRequest, *, fallback: str = DEFAULT, roots: Sequence[Path] | None = None) -> SAEChoice:
    """The SAE ``req`` asks for (``fallback`` when it names none). With ``roots``, a folder must lie under
    them unless it is the ``fallback`` itself (the server's own choice).

    Raises:
        InputError: a folder outside the roots, or an incomplete pretrained name.
    """
    spec = (req.sae or fallback).strip()
    if roots is None or req.sae_release or req.sae_id:
        return SAEChoice.parse(spec, req.sae_release, req.sae_id)
    if spec == DEFAULT or (":" in spec and not path_exists(Path(spec))):
        return SAEChoice.parse(spec)
    if spec == fallback:
        return SAEChoice.folder(Path(spec).expanduser().resolve())
    return SAEChoice.folder(resolve_under_roots(spec, roots))


def embed_config(req: EmbedRequest) -> EmbedConfig:
    """The reading and pooling settings of ``req`` (recorded in the embedding's manifest).

    Raises:
        InputError: inconsistent settings (e.g. a token budget below the window).
    """
    return EmbedConfig(
        pooling=req.pooling,
        threshold=req.threshold,
        use_sae_thresholds=req.use_sae_thresholds,
        chat_template=req.chat_template,
        window=req.window,
        token_budget=req.token_budget,
    )


def embed_dataset(
    ws: Workspace,
    req: EmbedRequest,
    choice: SAEChoice,
    *,
    progress: Callable[[ShardProgress], None] | None = None,
) -> EmbeddingManifest:
    """Embed ``req.dataset`` with ``choice`` (see :func:`sae_choice`), resuming a run with the same settings.

    Raises:
        NotFoundError: unknown dataset.
        InputError: bad settings, or an SAE that cannot be loaded; a Ray cluster that cannot be reached.
        MissingAssetError: ``req.ray`` is given but Ray is not installed (``pip install 'saescope[ray]'``).
        SaescopeError: another process is embedding it with the same settings.
    """
    return ws.embed(
        req.dataset,
        choice,
        embed_config(req),
        reader=req.reader,
        shard_size=req.shard_size,
        progress=progress,
        ray=ray_settings(req),
    )


def ray_settings(req: EmbedRequest) -> RaySettings | None:
    """Where ``req`` runs on Ray (None: in this process).

    Raises:
        InputError: a Ray setting is given without ``ray``.
    """
    if req.ray is None:
        extra = [n for n in ("ray_actors", "gpus_per_actor") if getattr(req, n) is not None]
        if extra or req.cpus_per_actor != EmbedRequest.model_fields["cpus_per_actor"].default:
            raise InputError(f"{', '.join(extra) or 'cpus_per_actor'} applies only with ray (--ray [ADDRESS])")
        return None
    from saescope.distributed import RaySettings  # not before: the local path never loads it

    return RaySettings(req.ray.strip(), req.ray_actors, req.gpus_per_actor, req.cpus_per_actor)
