# The table of `make bench`: one row per workload from the raw measurements
# ("round workload config ops_per_sec"), as medians of per-round figures.
#
#   awk -v workloads="mount_tmpfs ..." -f tests/bench/table.awk raw.txt
#
# A row's goals are judged only where the timing can judge them: when the
# median deviation of none's time per op (noise) exceeds half of what
# refledger adds, the row says "timing: noise" and the instruction profile
# decides (waits on timers, such as a transaction group's or the xfs log's,
# move these rows' times by more than the probes cost).
function median(a, n,   i, j, t, b) {
	for (i = 1; i <= n; i++) b[i] = a[i]
	for (i = 2; i <= n; i++)
		for (j = i; j > 1 && b[j - 1] > b[j]; j--) { t = b[j]; b[j] = b[j - 1]; b[j - 1] = t }
	return (n % 2) ? b[(n + 1) / 2] : (b[n / 2] + b[n / 2 + 1]) / 2
}
{ v[$1, $2, $3] = $4; rounds[$1] = 1 }
END {
	printf "%-15s %9s %9s %9s %9s | %7s %7s %7s %6s | %9s %9s %9s %9s | %7s | %s\n",
		"workload", "none", "floor", "refledger", "peer", "fl/none", "rl/none", "pr/none", "gap",
		"fl_add", "rl_add", "peer_add", "noise", "rl/peer", "goals"
	nw = split(workloads, W, " ")
	for (k = 1; k <= nw; k++) {
		w = W[k]
		n = 0; np = 0
		delete N; delete F; delete R; delete FR; delete RR; delete G; delete T
		delete FA; delete RA; delete P; delete PR; delete PA; delete RP; delete D
		for (r in rounds) {
			if (!v[r, w, "none"] || !v[r, w, "floor"] || !v[r, w, "refledger"]) continue
			n++
			N[n] = v[r, w, "none"]; F[n] = v[r, w, "floor"]; R[n] = v[r, w, "refledger"]
			FR[n] = F[n] / N[n]; RR[n] = R[n] / N[n]; G[n] = FR[n] - RR[n]
			T[n] = 1e6 / N[n]
			FA[n] = 1e6 / F[n] - T[n]; RA[n] = 1e6 / R[n] - T[n]
			if (v[r, w, "peer"]) {
				np++; P[np] = v[r, w, "peer"]; PR[np] = P[np] / N[n]; PA[np] = 1e6 / P[np] - T[n]
				RP[np] = RA[n] / PA[np]
			}
		}
		if (!n) { printf "%-15s no complete round\n", w; continue }
		tm = median(T, n)
		for (i = 1; i <= n; i++) D[i] = (T[i] > tm) ? T[i] - tm : tm - T[i]
		noise = median(D, n)
		gap = median(G, n); ra = median(RA, n)
		timed = noise <= ra / 2
		goals = !timed ? "timing: noise" : (gap <= 0.03) ? "gap met" : "gap NOT met"
		if (np) {
			p = sprintf("%9.5g", median(P, np)); pr = sprintf("%7.3f", median(PR, np))
			pa = median(PA, np); pas = sprintf("%9.2f", pa)
			if (timed && pa > 2 * noise) {
				rp = median(RP, np); rps = sprintf("%7.3f", rp)
				goals = goals ((rp <= 0.2) ? ", peer met" : ", peer NOT met")
			} else {
				rps = sprintf("%7s", "-")
			}
		} else {
			p = sprintf("%9s", "-"); pr = sprintf("%7s", "-"); pas = sprintf("%9s", "-"); rps = sprintf("%7s", "-")
		}
		printf "%-15s %9.5g %9.5g %9.5g %s | %7.3f %7.3f %s %6.3f | %9.2f %9.2f %s %9.2f | %s | %s\n", w,
			median(N, n), median(F, n), median(R, n), p, median(FR, n), median(RR, n), pr, gap,
			median(FA, n), ra, pas, noise, rps, goals
	}
}
