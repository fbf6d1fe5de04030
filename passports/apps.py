from django.apps import AppConfig


class PassportsConfig(AppConfig):
    name = "passports"

    def ready(self) -> None:
        # The ledger announces every appended event to its hooks; the dispatch
        # desk keeps its jobs in step that way (the ledger never imports it).
        from passports import ledger
        from passports.dispatch import services as dispatch_services

        ledger.on_append(dispatch_services.on_ledger_append)
        # The ledgers are signed with the audit keyring (manage.py audit_keys).
        ledger.register_signed_chain()
