"""When a host first missed the reaper's heartbeat since it last answered: it takes no new session meanwhile."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("hosts", "0002_drained"),
    ]

    operations = [
        migrations.AddField(
            model_name="sandboxhost",
            name="missed_since",
            field=models.DateTimeField(blank=True, null=True),
        ),
    ]
