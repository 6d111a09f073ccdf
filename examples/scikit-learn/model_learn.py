"""Train a RandomForest on the iris data set and print a classification report.

The data comes from iris.csv beside this script: Fisher's iris data (150 samples) as
shipped inside scikit-learn (sklearn/datasets/data/iris.csv), with the class numbers
written as species names. The UCI address the classic tutorial downloads from is not
reachable from this machine, so the example carries its own copy.
"""

import pandas as pd
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import classification_report
from sklearn.model_selection import train_test_split

DATA = "iris.csv"

print(f"Data: {DATA} (Fisher's iris data as shipped with scikit-learn)")
df = pd.read_csv(DATA)
print(df.head())

X = df.drop(columns=["species"])
y = df["species"]
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=42)

model = RandomForestClassifier(n_estimators=100, random_state=42)
model.fit(X_train, y_train)
predictions = model.predict(X_test)

print(classification_report(y_test, predictions))
