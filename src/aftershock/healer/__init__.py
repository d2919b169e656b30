"""The reconciler: health watches, playbook matching, throttling, remediation.

Rule: never imports a concrete driver or probe; time comes from the injected
``Clock`` so every state machine is tested on a manual clock.
"""
