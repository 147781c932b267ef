from satgate.ledger.thresholds import crossed, mark


def test_marks_round_up():
    assert mark(800, 10) == 8
    assert mark(800, 3) == 3  # 2.4 credits: reached only once the third is spent
    assert mark(1000, 7) == 7


def test_a_debit_reports_what_it_crossed_and_nothing_twice():
    assert crossed((800, 1000), 10, 7, 8) == [800]
    assert crossed((800, 1000), 10, 8, 9) == []
    assert crossed((800, 1000), 10, 9, 10) == [1000]
    assert crossed((800, 1000), 10, 0, 10) == [800, 1000]  # one large debit crosses both
    assert crossed((800, 1000), 10, 10, 10) == []
