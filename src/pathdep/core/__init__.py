"""Models, initialisation, perturbations, optimisers, the pure update map, batch schedules and
:class:`~pathdep.core.context.RunContext` (layer ``core``: imports only ``io``, ``data``)."""
