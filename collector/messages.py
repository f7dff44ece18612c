"""What a user is told for each reason code: release results, the job list's availability, printer health."""

from __future__ import annotations

from pullprint.states import INTERRUPTED, JobState


def N_(text: str) -> str:  # noqa: N802 - the gettext convention for "mark for translation, translate later"
    """Marks a message for the translators (pybabel extract); the station translates it when shown."""
    return text


MESSAGES = {
    # A release's result for one job (collector/release.py).
    JobState.PRINTED: N_("Sent to the printer."),
    "queued": N_("Waiting for the printer; it will print shortly."),
    "not-found": N_("The job no longer exists."),
    "not-owner": N_("This job belongs to someone else."),
    "not-releasable": N_("The job is already being printed or has been printed."),
    "unavailable": N_("No collector holding this job can be reached right now; try again shortly."),
    INTERRUPTED: N_("The last release of this job was interrupted: check the printer, then release it again "
                    "to confirm."),
    "printer-busy": N_("The printer is busy with other jobs; the job is still held."),
    "print-failed": N_("The printer reported a failure."),
    "analyst-unreachable": N_("The release could not be recorded; the job is still held."),
    "corrupt-spool": N_("The stored job failed its integrity check and cannot be printed."),
    # {detail}: why the held document cannot be put in a language the printer takes (pullprint/render.py).
    "cannot-convert": N_("This printer cannot print this document ({detail}); it is still held: release it "
                         "at another printer."),
    # {command}: what the printer's document filter refused (collector/output/document_filter.py).
    "document-refused": N_("This printer does not accept documents with printer commands ({command}); "
                           "the job was not printed."),
    # Why a listed job cannot be released now (collector/terminal.py).
    "holder-unreachable": N_("Every collector holding this job is unreachable right now."),
    JobState.RELEASING: N_("This job is being released."),
    # A printer's health: why a release is refused, and warnings (collector/health/policy.py).
    "printer-error:down": N_("The printer reports that it is down"),
    "printer-error:offline": N_("The printer is offline"),
    "printer-error:jammed": N_("The printer has a paper jam"),
    "printer-error:media-empty": N_("The printer is out of paper"),
    "printer-error:door-open": N_("A door or cover of the printer is open"),
    "printer-error:toner-empty": N_("The printer is out of toner"),
    "printer-error:output-full": N_("The printer's output tray is full"),
    "printer-error:unreachable": N_("The printer does not answer status requests"),
    "printer-out-of-service": N_("The printer is out of service"),
    "printer-unreachable": N_("The printer's status is unknown (it does not answer status requests)"),
    "toner-low": N_("Toner is low"),
    "media-low": N_("Paper is low"),
    "output-near-full": N_("The output tray is nearly full"),
    "service-requested": N_("The printer asks for service"),
}
