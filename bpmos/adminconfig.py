"""``django.contrib.admin`` with the back-office's own site as ``admin.site``
(``bpmos.adminsite``: the BPM-OS header, the plant's domains, the auditors'
read-only policy). INSTALLED_APPS names it in place of ``django.contrib.admin``.
"""

from django.contrib.admin.apps import AdminConfig


class PlantAdminConfig(AdminConfig):
    default_site = "bpmos.adminsite.PlantAdminSite"
