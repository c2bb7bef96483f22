-- TimerStore.cancel. ARGV: key, due_at ('' : whatever it is). Reply: 1 cancelled, 0 not.
return timer_cancel(ARGV[1], ARGV[2])
