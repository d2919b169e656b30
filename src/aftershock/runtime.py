"""The composition root: builds drivers, probes, sinks and the clock, and runs things.

Entry points (``cli/``, ``operator/``, ``scheduling/``) call only this module;
everything below receives its collaborators from here.
"""
