"""The dispatch desk (dispatch contract, docs/dispatch.md): ``services`` moves
products between live and past, ``selectors`` reads the desk, ``api`` serves it
(views, serializers, urls, the SSE ``stream`` and its ``tickets``)."""
