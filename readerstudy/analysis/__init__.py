"""The analysis sub-domain: a frozen snapshot of the reads → ``readerstudy.stats.study_analyse`` →
one results dict → the page, the figures and the exports.

Django side: ``urls``, ``views``, ``services`` (snapshot creation, the results cache), ``selectors``.
Pure (no Django): ``frames`` (payload → reads frame, the payload hash), ``results`` and
``result_rows`` (the results dict), ``localisation``, ``tables`` and ``page_tables``, ``figures``,
``exports``.
"""
