"""Locust files: the mobile app's drivers (`mobile_app.py`) and OCPP chargers (`chargers.py`), on gevent.

They import nothing of the asyncio code base: their drivers, chargers and stations come from the file
`csms bench locust-setup` writes (`--csms-data`, `setup_data.py`).
"""
