"""manage.py commands of the labs app; they import the app's own modules only."""
