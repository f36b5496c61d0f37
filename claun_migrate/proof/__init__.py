"""The proof tools: verify, bench, the load generator, WSGI serving and embedded PostgreSQL.

Everything here needs the ``verify`` extra; check/diff/apply never import it.
"""
