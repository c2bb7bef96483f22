-- TimerStore.cancel. ARGV: key, due_at ('' : whatever it is). Reply: 1 cancelled, 0 not.
check_data_version(true)
return timer_cancel(ARGV[1], ARGV[2])
