"""``manage.py labs validate|load|import-killercoda``; imports the labs app only."""
