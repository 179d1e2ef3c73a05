"""Queueing: the Celery app (`app`), the tasks over the pipeline (`tasks`),
kombu's Redis transport made safe against a killed worker (`broker`) and
the beat scheduler (`beat`).
"""
