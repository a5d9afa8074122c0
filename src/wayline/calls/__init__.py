"""One SDK call cycle (prepare -> call -> renew -> release -> complete) and its transport
port, shared by the dev worker and the Lambda dispatcher (``cycle``)."""
