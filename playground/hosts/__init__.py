"""The sandbox hosts behind the site: the certificates their agents and the site show each other
(:mod:`playground.hosts.certificates`, ``manage.py hostcerts``). docs/hosts.md tells the whole."""
