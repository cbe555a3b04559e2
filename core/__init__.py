"""The bottom of the house: the exceptions every stage raises, where the packaged
models live, and small helpers no stage owns. Imports nothing of ragmini."""
