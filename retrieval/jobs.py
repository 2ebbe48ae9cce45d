"""Background reading of uploaded data sets, one at a time, resumable after a crash."""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from retrieval.intake import Intake, IntakeReport
from retrieval.readers import RowLimits

log = logging.getLogger(__name__)


class DatasetJobs:
    """Reads data sets on a worker thread; the upload file is removed once it is fully read."""

    def __init__(self, intake: Intake, uploads: Path, limits: RowLimits) -> None:
        self.intake = intake
        self.uploads = uploads
        self.limits = limits
        # One reader: the intake serialises writes anyway, and embedding uses every core.
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dataset")
        self._stop = threading.Event()

    def submit(self, contribution_id: int, path: Path) -> Future[IntakeReport | None]:
        return self._pool.submit(self._run, contribution_id, path)

    def resume(self) -> list[int]:
        """Queue the data sets an earlier process left half-read."""
        resumed = []
        for cid in self.intake.unfinished_datasets():
            matches = sorted(self.uploads.glob(f"{cid}.*"))
            if matches:
                self.submit(cid, matches[0])
                resumed.append(cid)
            else:
                self.intake.finish(cid, "failed", "the uploaded file was lost before it was fully read")
        return resumed

    def _run(self, contribution_id: int, path: Path) -> IntakeReport | None:
        try:
            report = self.intake.ingest_dataset(
                contribution_id, path, limits=self.limits, stop=self._stop
            )
        except Exception:  # noqa: BLE001 - any failure is recorded on the contribution by the intake
            path.unlink(missing_ok=True)
            return None
        if report.status != "processing":  # paused by shutdown: keep the file to resume from
            path.unlink(missing_ok=True)
        return report

    def shutdown(self) -> None:
        """Pause the running data set after its current batch; it resumes at the next start."""
        self._stop.set()
        self._pool.shutdown(wait=True, cancel_futures=True)
