"""Sessions of several nodes: Session.short_id (filled for existing rows), Instance.image, address,
port_options, and the state ``removing``."""

from django.apps.registry import Apps
from django.db import migrations, models
from django.db.backends.base.schema import BaseDatabaseSchemaEditor

SHORT_ID_LENGTH = 20  # a copy, not an import: a migration keeps the value it was written with


def fill_existing_rows(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    """Give each existing session its short id and each existing instance its session's image."""
    Session = apps.get_model("sandboxes", "Session")
    Instance = apps.get_model("sandboxes", "Instance")
    for session in Session.objects.all().only("id", "image"):
        Session.objects.filter(pk=session.pk).update(short_id=session.id.hex[:SHORT_ID_LENGTH])
        Instance.objects.filter(session_id=session.pk).update(image=session.image)


class Migration(migrations.Migration):
    dependencies = [
        ("sandboxes", "0003_images"),
    ]

    operations = [
        migrations.AddField(
            model_name="session",
            name="short_id",
            field=models.CharField(editable=False, max_length=20, null=True),
        ),
        migrations.AddField(
            model_name="instance",
            name="image",
            field=models.CharField(default="", max_length=64),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="instance",
            name="address",
            field=models.GenericIPAddressField(blank=True, null=True, protocol="IPv4"),
        ),
        migrations.AddField(
            model_name="instance",
            name="port_options",
            field=models.JSONField(blank=True, default=dict),
        ),
        migrations.AlterField(
            model_name="instance",
            name="state",
            field=models.CharField(
                choices=[
                    ("requested", "Requested"),
                    ("provisioning", "Provisioning"),
                    ("running", "Running"),
                    ("removing", "Removing"),
                    ("failed", "Failed"),
                    ("destroyed", "Destroyed"),
                ],
                db_index=True,
                default="requested",
                max_length=16,
            ),
        ),
        migrations.RunPython(fill_existing_rows, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="session",
            name="short_id",
            field=models.CharField(db_index=True, editable=False, max_length=20, unique=True),
        ),
    ]
