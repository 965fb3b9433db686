"""The sandbox agent (``python -m sandbox.agent``, root, one per sandbox host): creates, adopts and
destroys sandboxes and serves the wire protocol. May import every other package of ``sandbox``,
never ``playground``.

``service`` is the composition root (and ``main``); ``dispatch`` serves the socket, one handler per
operation; ``sandboxes`` creates and destroys visitors' sandboxes, ``provisioning`` brings one up
or down on the host, ``capacity`` counts slots and owns the warm pool (``warmpool``); ``tabs`` the
terminals after the first; ``attach`` the terminal streams; ``recovery`` adoption after a restart
and reconciliation; ``keeping`` the agent's side of the keeper; ``registry`` the tracked
sandboxes; ``records`` what is known and recorded of each; ``requestfields`` checks requests.
"""
