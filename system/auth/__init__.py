"""Authentication: API keys and JWT pairs.

Owns the DRF authentication classes (API keys by hash in constant time, simplejwt bearer
tokens), the token and API-key endpoints, their serializers and admin, the outage-tolerant
variants used by the status API, and the `create_api_key` command. It may import the kernel and
`system.models`; no product app.
"""
