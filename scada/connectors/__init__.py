"""Connector classes, one per kind: the connectors contract's ``BaseConnector``
(``test_connection``, ``fetch_data``, ``normalize``, ``push_data``)."""
