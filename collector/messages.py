"""What a user is told for each reason code: release results, the job list's availability, printer health."""

from __future__ import annotations

from pullprint.states import INTERRUPTED, JobState

MESSAGES = {
    # A release's result for one job (collector/release.py).
    JobState.PRINTED: "Sent to the printer.",
    "queued": "Waiting for the printer; it will print shortly.",
    "not-found": "The job no longer exists.",
    "not-owner": "This job belongs to someone else.",
    "not-releasable": "The job is already being printed or has been printed.",
    "unavailable": "No collector holding this job can be reached right now; try again shortly.",
    INTERRUPTED: "The last release of this job was interrupted: check the printer, then release it again "
                 "to confirm.",
    "printer-busy": "The printer is busy with other jobs; the job is still held.",
    "print-failed": "The printer reported a failure.",
    "analyst-unreachable": "The release could not be recorded; the job is still held.",
    "corrupt-spool": "The stored job failed its integrity check and cannot be printed.",
    # {command}: what the printer's document filter refused (collector/output/document_filter.py).
    "document-refused": "This printer does not accept documents with printer commands ({command}); "
                        "the job was not printed.",
    # Why a listed job cannot be released now (collector/terminal.py).
    "holder-unreachable": "Every collector holding this job is unreachable right now.",
    JobState.RELEASING: "This job is being released.",
    # A printer's health: why a release is refused, and warnings (collector/health/policy.py).
    "printer-error:down": "The printer reports that it is down",
    "printer-error:offline": "The printer is offline",
    "printer-error:jammed": "The printer has a paper jam",
    "printer-error:media-empty": "The printer is out of paper",
    "printer-error:door-open": "A door or cover of the printer is open",
    "printer-error:toner-empty": "The printer is out of toner",
    "printer-error:output-full": "The printer's output tray is full",
    "printer-error:unreachable": "The printer does not answer status requests",
    "printer-out-of-service": "The printer is out of service",
    "printer-unreachable": "The printer's status is unknown (it does not answer status requests)",
    "toner-low": "Toner is low",
    "media-low": "Paper is low",
    "output-near-full": "The output tray is nearly full",
    "service-requested": "The printer asks for service",
}
