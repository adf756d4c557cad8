//! petgraph's graph traits for kith's compressed adjacency, so petgraph's traversals and
//! algorithms (`Dfs`, `Bfs`, `tarjan_scc`, …) run on the graph without a copy.
//!
//! kith keeps its own flat arrays rather than `petgraph::csr::Csr` because the stage needs
//! per-arc kind and weight columns, a reverse index and a `mutual` flag in the same layout;
//! these impls are the bridge. Node identifiers are the node numbers, edge identifiers the
//! arc positions. The tests check petgraph's components on this view against kith's own.

use petgraph::visit::{
    GraphBase, IntoNeighbors, IntoNodeIdentifiers, NodeCompactIndexable, NodeCount, NodeIndexable,
    VisitMap, Visitable,
};

use super::network::Adjacency;

impl GraphBase for Adjacency {
    type NodeId = u32;
    type EdgeId = usize;
}

impl NodeCount for Adjacency {
    fn node_count(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }
}

impl NodeIndexable for Adjacency {
    fn node_bound(&self) -> usize {
        self.node_count()
    }

    fn to_index(&self, node: u32) -> usize {
        node as usize
    }

    fn from_index(&self, index: usize) -> u32 {
        u32::try_from(index).expect("node numbers fit in u32")
    }
}

impl NodeCompactIndexable for Adjacency {}

impl<'a> IntoNeighbors for &'a Adjacency {
    type Neighbors = std::iter::Copied<std::slice::Iter<'a, u32>>;

    fn neighbors(self, node: u32) -> Self::Neighbors {
        self.neighbours(node as usize).iter().copied()
    }
}

impl IntoNodeIdentifiers for &Adjacency {
    type NodeIdentifiers = std::ops::Range<u32>;

    fn node_identifiers(self) -> Self::NodeIdentifiers {
        0..self.node_count() as u32
    }
}

/// Which nodes a traversal has reached: one flag per node number.
#[derive(Debug, Clone)]
pub struct Reached(Vec<bool>);

impl VisitMap<u32> for Reached {
    fn visit(&mut self, node: u32) -> bool {
        !std::mem::replace(&mut self.0[node as usize], true)
    }

    fn is_visited(&self, node: &u32) -> bool {
        self.0[*node as usize]
    }

    fn unvisit(&mut self, node: u32) -> bool {
        std::mem::replace(&mut self.0[node as usize], false)
    }
}

impl Visitable for Adjacency {
    type Map = Reached;

    fn visit_map(&self) -> Reached {
        Reached(vec![false; self.node_count()])
    }

    fn reset_map(&self, map: &mut Reached) {
        map.0.clear();
        map.0.resize(self.node_count(), false);
    }
}
