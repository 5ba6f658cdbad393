"""The simulated core bank that feeds Strata: a deterministic synthetic bank (branches, RMs,
customers, households, accounts of every product type) and its stream of postings in business
time.

``strata run`` drives it in process (:mod:`strata.simulator.live`), ``strata simulate``
publishes it to Kafka (:mod:`strata.simulator.publish`). Everything is a function of the seed:
the same seed gives the same bank and the same events, event ids included.
"""
