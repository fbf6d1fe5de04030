from django.apps import AppConfig


class PlantGeneratorConfig(AppConfig):
    """``manage.py generate_plant`` and the bulk builders the benches share."""

    name = "plant_generator"
    verbose_name = "Plant generator"
