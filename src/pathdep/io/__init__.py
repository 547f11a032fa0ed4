"""Files (layer ``io``, the bottom): one atomic writer, the trajectory schema, provenance."""
