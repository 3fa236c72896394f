"""The README demo app: a Flask app built by pybuild and run by pyrunc."""

import os
import socket

from flask import Flask, jsonify

app = Flask(__name__)


@app.get("/")
def index():
    return jsonify(app="flaskdemo", version=os.environ.get("APP_VERSION"), host=socket.gethostname(),
                   uid=os.getuid(), pid=os.getpid())


@app.get("/health")
def health():
    return "ok\n"


if __name__ == "__main__":
    app.run(host="0.0.0.0", port=int(os.environ.get("PORT", "5000")))
