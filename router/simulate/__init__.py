"""The policy simulator (``omniroute simulate``): the real rules, SLA clocks, urgency
ordering and escalation timers on a simulated clock, against recorded or generated
traffic and a spec of agents, compared with FIFO and strict-priority ordering.

``traffic`` reads and writes the JSONL traffic, ``generate`` makes a realistic day,
``agents`` parses the agents spec, ``adapter`` is the one place the real routing code
is called, ``prepare`` decides every message once, ``engine`` replays the arrivals
under an ordering (``backlog`` is the simulated store), ``report`` prints the table.
"""
