"""The workdir layout: checkpoints/<run_id>/, engines/<run_id>/ (export.json), reports/ (results.db)."""
from __future__ import annotations

from pathlib import Path

from .io import read_json
from .formats import Artifact, ExportEntry


class Workdir:
    """Paths of one workdir, and what a run has in it. `run_id` is the id the folders carry (RunSpec.stored_id)."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def ckpt_dir(self, run_id: str) -> Path:
        return self.root / "checkpoints" / run_id

    def engine_dir(self, run_id: str) -> Path:
        return self.root / "engines" / run_id

    @property
    def reports_dir(self) -> Path:
        return self.root / "reports"

    @property
    def results_db(self) -> Path:
        return self.reports_dir / "results.db"

    def has_run(self, run_id: str) -> bool:
        """Whether checkpoints/<run_id>/meta.json exists (a finished or started fine-tune)."""
        return (self.ckpt_dir(run_id) / "meta.json").exists()

    def stored_id(self, run) -> str:
        """The id a RunSpec's folders carry here: run.run_id, or run.legacy_run_id where only a workdir of an older
        version has the run (compatibility lookup)."""
        old = not self.has_run(run.run_id) and self.has_run(run.legacy_run_id)
        return run.legacy_run_id if old else run.run_id

    def manifest(self, run_id: str) -> dict:
        """engines/<run_id>/export.json ({} when missing or unreadable)."""
        return read_json(self.engine_dir(run_id) / "export.json") or {}

    def artifacts(self, run_id: str) -> list[Artifact]:
        """The run's torch checkpoint, then every ok artifact of its export manifest."""
        arts = [Artifact(str(self.ckpt_dir(run_id) / "best.pt"), "pytorch", "fp32", run_id)]
        return arts + [e.artifact(self.engine_dir(run_id), run_id) for e in self.entries(run_id).values()
                       if e.status == "ok"]

    def entries(self, run_id: str) -> dict[str, ExportEntry]:
        """{file: typed entry} of the run's export manifest."""
        return ExportEntry.listed(self.manifest(run_id))
