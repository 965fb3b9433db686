"""The operator's drain apart from the host's state, so that a drained host lost and back drains again."""

from django.apps.registry import Apps
from django.db import migrations, models
from django.db.backends.base.schema import BaseDatabaseSchemaEditor


def drained_from_state(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    apps.get_model("hosts", "SandboxHost").objects.filter(state="draining").update(drained=True)


class Migration(migrations.Migration):
    dependencies = [
        ("hosts", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="sandboxhost",
            name="drained",
            field=models.BooleanField(default=False),
        ),
        migrations.RunPython(drained_from_state, migrations.RunPython.noop),
    ]
