from flask import Flask, request
from markupsafe import escape  # flask.escape was removed in Flask 2.3
import socket

app = Flask(__name__)


@app.route("/")
def hello_world():
    return "<h1>Hello World!</h1>"


@app.route("/hello")
def hello():
    name = request.args.get("name", "World")
    return f"<h1>Hello, {escape(name)}!</h1><p>from container {escape(socket.gethostname())}</p>"


if __name__ == "__main__":
    app.run(host="0.0.0.0", port=1234)
