# The workshop's last broadcast message (playground/workshops/actions.py).

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("workshops", "0003_dashboard"),
    ]

    operations = [
        migrations.AddField(
            model_name="workshop",
            name="broadcast_message",
            field=models.CharField(blank=True, max_length=300),
        ),
        migrations.AddField(
            model_name="workshop",
            name="broadcast_from",
            field=models.CharField(blank=True, max_length=150),
        ),
        migrations.AddField(
            model_name="workshop",
            name="broadcast_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
    ]
