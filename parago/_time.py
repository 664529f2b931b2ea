
class Ticker: pass
class Timer: pass
def after(): pass
def tick(): pass
