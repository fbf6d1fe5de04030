from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "bpmos.accounts"
    label = "accounts"
    verbose_name = "Accounts and roles"
