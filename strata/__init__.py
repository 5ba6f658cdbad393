"""The ``strata`` command and the wiring of Strata's processes."""
