"""The run and study folders, owned here and nowhere else.

- :mod:`ffnlp.folders.layout`: the name of every file of a run folder and of a study folder;
- :mod:`ffnlp.folders.transaction`: a training command's hold on its run folder (hidden sibling,
  lock, commit, a kept interrupted run);
- :mod:`ffnlp.folders.restarts`: torchrun's restarts (the job writing a run, the run an earlier
  attempt left) and the interrupted marker;
- :mod:`ffnlp.folders.folder`: reading a run folder back, every file checked, and writing its
  config.toml and summary.json (each in one place);
- :mod:`ffnlp.folders.groups`: the folder of a group of runs (``ffnlp repeat``, ``classify cv``).

This package sits low in the layers: it imports ffnlp's errors, file writing and configuration
dumping, never a task, a report, a tuner or the CLI.
"""
