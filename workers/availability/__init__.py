"""Riding out remote outages without anyone watching: a remote that is down is paused, not failed.

checks     what "this remote works with these settings" means, per remote; also the probe
monitor    each worker's view of both remotes: a cache of their shared state, the probe loop, the
           confirmation of a suspected outage, and the start-up check
drain      releases a remote's parked entities in dependency order, a few in flight at a time
takeover   hands the entities of a worker whose heartbeat stopped to the live workers
gate       what crons and admin jobs ask before they start
"""
