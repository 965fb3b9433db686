"""``manage.py endsessions``: end every live session and destroy its sandboxes; imports the sandboxes app only."""
