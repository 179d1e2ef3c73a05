"""Queueing: the Celery app (`app`), the tasks over the pipeline (`tasks`),
their delivery policy (`delivery`: requeue, retry, park, dead letter,
delivery cap), kombu's Redis transport made safe against a killed worker
(`broker`) and the beat scheduler (`beat`).
"""
