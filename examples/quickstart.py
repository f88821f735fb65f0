"""The spec's first tracking example, with `tracking` in place of `mlflow`.

Run it from the repository root; it logs to ./mlruns (or $MLFLOW_TRACKING_URI).
"""

from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score
from sklearn.model_selection import train_test_split

import tracking as mlflow
import tracking.sklearn

iris = load_iris()
X_train, X_test, y_train, y_test = train_test_split(
    iris.data, iris.target, test_size=0.2, random_state=42
)

mlflow.set_experiment("iris-quickstart")
with mlflow.start_run(run_name="lr-model-v1") as run:
    mlflow.log_param("model_type", "LogisticRegression")
    mlflow.log_param("max_iter", 200)
    model = LogisticRegression(max_iter=200)
    model.fit(X_train, y_train)
    accuracy = accuracy_score(y_test, model.predict(X_test))
    mlflow.log_metric("accuracy", accuracy)
    tracking.sklearn.log_model(model, "model")
    print(f"Model accuracy: {accuracy}")

print(f"Run {run.info.run_id} logged to {mlflow.get_tracking_uri()}")
print(f"Artifacts: {run.info.artifact_uri}")
