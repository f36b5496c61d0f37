"""The data-layer model's reading of a run: which files it must analyse."""

from __future__ import annotations

from claun_migrate.codemods.data_layer import relevant

SOURCES = {
    "app/__init__.py": "",
    "app/db.py": "import psycopg2\n\ndef get_conn():\n    return psycopg2.connect('')\n",
    "app/routes.py": "from app.db import get_conn\nfrom app import views\n\nx = get_conn()\n",
    "app/views.py": "def show(row):\n    return {'id': row[0]}\n",
    "app/wrap.py": "from . import routes\n",
    "app/plain.py": "import json\n\ndef dump(x):\n    return json.dumps(x)\n",
    "schema.sql": "CREATE TABLE t (id INT)",
}


def test_files_that_touch_import_or_are_imported_by_the_data_layer_are_read_others_not():
    assert relevant(SOURCES) == {
        "app/db.py",  # a driver
        "app/routes.py",  # imports the connector
        "app/wrap.py",  # imports a caller (a wrapper may hand its connection on)
        "app/views.py",  # imported by a caller: rows may go there
        "app/__init__.py",  # `from app import views` names the package too
    }
