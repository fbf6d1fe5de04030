from django.apps import AppConfig


class ElogConfig(AppConfig):
    name = "elog"
    verbose_name = "Electronic log and audit"

    def ready(self) -> None:
        # bpmos's core audits through bpmos.audit, which cannot import elog
        # (elog sits above it): hand it the one writer.
        from bpmos import audit as audit_port
        from elog import audit, signed

        audit_port.writer_register(audit.record)
        # What the audit keyring signs, for manage.py audit_keys.
        signed.register_elog()
